"""`python3 -m deploy COMMAND [SVC...]`: the local runner (see deploy/local.py)."""

from deploy.local import main

raise SystemExit(main())
