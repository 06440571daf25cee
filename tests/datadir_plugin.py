"""Loaded by pytest before pytest-django reads the settings (pytest.ini: ``-p``): the test run
prepares DATA_DIR the way manage.py and the servers do."""

from langflow_site.datadir import prepare

prepare()
