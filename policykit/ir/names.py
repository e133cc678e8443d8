"""Words no user name may take: target keywords and names targets bind."""

REGO_KEYWORDS = frozenset(
    {
        "as",
        "contains",
        "data",
        "default",
        "else",
        "every",
        "false",
        "if",
        "import",
        "in",
        "input",
        "not",
        "null",
        "package",
        "some",
        "true",
        "with",
    }
)
CEL_RESERVED = frozenset(
    {
        "break",
        "const",
        "continue",
        "else",
        "false",
        "for",
        "function",
        "if",
        "import",
        "in",
        "let",
        "loop",
        "namespace",
        "null",
        "package",
        "return",
        "true",
        "var",
        "void",
        "while",
    }
)
BOUND_BY_TARGETS = frozenset(
    {
        "object",
        "obj",
        "params",
        "input",
        "data",
        "request",
        "variables",
        "item",
        "oldObject",
        "namespaceObject",
        "authorizer",
    }
)
RESERVED_VARS = REGO_KEYWORDS | CEL_RESERVED | BOUND_BY_TARGETS
