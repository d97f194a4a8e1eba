"""The data browser of `make studio` (Prisma Studio's job): every table of every service.

It may import the services' models (to learn their tables); nothing in services imports it.
A top-level package, beside services/ and deploy/: it is not a service (no schema, no events,
no image of its own) and not deployment configuration, but a developer's tool run from a
checkout, like the runner.
"""
