"""Rule files: YAML with positions (``yamlsource``), validation (``load``), the
immutable ``Rule`` (``model``), examples added in place (``edit``)."""
