"""Re-encrypt every Credential variable under the newest VARIABLE_ENCRYPTION_KEYS version.

Rotation: add a new version to VARIABLE_ENCRYPTION_KEYS (keep the old one), restart, run this,
then remove the old version. Values whose key is already gone are left untouched and listed
(never printed); the command then exits with status 1.
"""

from django.core.management.base import BaseCommand, CommandError

from variables import crypto, services


class Command(BaseCommand):
    help = "Re-encrypt every Credential variable under the newest key of VARIABLE_ENCRYPTION_KEYS."

    def handle(self, *args, **options):
        done, problems = services.reencrypt_all()
        self.stdout.write(f"Re-encrypted {done} variable(s) under key version {crypto.current_version()}.")
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"{len(problems)} variable(s) could not be decrypted and were left as they are.")
