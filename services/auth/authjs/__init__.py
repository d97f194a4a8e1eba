"""The Auth.js (NextAuth) database adapter, over HTTP for a Next.js server."""
