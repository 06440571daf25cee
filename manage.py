#!/usr/bin/env python
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "langflow_site.settings")
    from langflow_site.datadir import prepare

    prepare()  # DATA_DIR, its secrets and the SQLite file, before the settings read them
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
