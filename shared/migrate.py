"""`python -m shared.migrate <service> <alembic args...>`: one service's migrations only.

e.g. `python -m shared.migrate goals upgrade head`, `... goals downgrade base`,
`... goals check`, `... goals revision --autogenerate -m "add x"`.
"""

from __future__ import annotations

import sys

from alembic.config import CommandLine, Config

from shared.config import REPO_ROOT, SERVICES, database_url, load_env_file


def alembic_config(service: str, url: str | None = None) -> Config:
    config = Config(str(REPO_ROOT / "services" / service / "alembic.ini"))
    config.set_main_option("script_location", str(REPO_ROOT / "services" / service / "migrations"))
    config.set_main_option("sqlalchemy.url", (url or database_url(service)).replace("%", "%%"))
    return config


def main(argv: list[str]) -> None:
    load_env_file()
    if not argv or argv[0] not in SERVICES:
        sys.exit(f"usage: python -m shared.migrate {{{'|'.join(SERVICES)}}} <alembic command>")
    service, rest = argv[0], argv[1:]
    cli = CommandLine(prog=f"shared.migrate {service}")
    options = cli.parser.parse_args(rest)
    if not hasattr(options, "cmd"):
        cli.parser.error("too few arguments")
    cli.run_cmd(alembic_config(service), options)


if __name__ == "__main__":
    main(sys.argv[1:])
