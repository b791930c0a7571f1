#!/usr/bin/env python3
"""Validate an SBOM that stowage wrote, with the reference validators.

Usage: scripts/validate-sbom.py spdx|cyclonedx FILE

  spdx       FILE is SPDX 2.3 JSON; spdx-tools parses it and runs its full
             validation (IDs unique and resolvable, license expressions from
             the SPDX list or the document's extracted licenses, namespace,
             dates, purls), as `pyspdxtools -i FILE` does.
  cyclonedx  FILE is CycloneDX 1.6 JSON; cyclonedx-python-lib checks it
             against the 1.6 JSON schema in strict mode (no unknown keys).

Exit status: 0 when FILE is valid, 1 when it is not (each error on stderr),
2 on a usage error or when the validator libraries are missing.

FILE is always read as JSON, whatever its name ends with: stowage writes
only JSON, and spdx-tools would otherwise guess the format from the name.

Needs Python 3 with `spdx-tools` and `cyclonedx-python-lib[json-validation]`,
e.g. a venv made with
  python3 -m venv /tmp/sbomtools
  /tmp/sbomtools/bin/pip install spdx-tools 'cyclonedx-python-lib[json-validation]'
and run as `/tmp/sbomtools/bin/python scripts/validate-sbom.py spdx out.spdx.json`.
"""

import sys


def validate_spdx(path):
    """The errors spdx-tools finds in the SPDX JSON document at `path`."""
    from spdx_tools.spdx.parser.error import SPDXParsingError
    from spdx_tools.spdx.parser.json import json_parser
    from spdx_tools.spdx.validation.document_validator import (
        validate_full_spdx_document,
    )

    try:
        document = json_parser.parse_from_file(path)
    except SPDXParsingError as err:
        return [f"parse: {message}" for message in err.get_messages()]
    except ValueError as err:  # json.JSONDecodeError is one
        return [f"parse: {err}"]
    version = document.creation_info.spdx_version
    if version not in ("SPDX-2.2", "SPDX-2.3"):
        return [f"spdxVersion: expected SPDX-2.3, got {version!r}"]
    return [
        f"{message.validation_message} (in {describe(message.context)})"
        for message in validate_full_spdx_document(document, version)
    ]


def describe(context):
    """Where a validation message points: the element's SPDX ID and type."""
    parts = []
    if context.spdx_id:
        parts.append(context.spdx_id)
    if context.element_type is not None:
        parts.append(context.element_type.name)
    return " ".join(parts) or "document"


def validate_cyclonedx(path):
    """The errors the CycloneDX 1.6 JSON schema (strict) finds in the document at `path`."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    except ValueError as err:  # json.JSONDecodeError is one
        return [f"parse: {err}"]
    return [] if error is None else [str(error)]


VALIDATORS = {"spdx": validate_spdx, "cyclonedx": validate_cyclonedx}


def main(argv):
    if len(argv) != 3 or argv[1] not in VALIDATORS:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    kind, path = argv[1], argv[2]
    try:
        errors = VALIDATORS[kind](path)
    except ImportError as err:
        print(f"error: {err}; install spdx-tools and cyclonedx-python-lib[json-validation]", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: cannot read {path}: {err}", file=sys.stderr)
        return 1
    if errors:
        print(f"{path}: invalid {kind} document:", file=sys.stderr)
        for error in errors:
            print(f"  {error}", file=sys.stderr)
        return 1
    print(f"{path}: valid {kind} document")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
