"""Reusable L3 constructs. Not named `constructs`: a top-level package of that name would shadow the
`constructs` library that aws-cdk-lib imports (see docs/development.md, "Layout")."""
