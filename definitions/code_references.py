"""Code references on asset definitions: ``with_source_code_references`` records the file and line of
each asset's function, ``link_code_references_to_git`` turns local files into links to the repository
(with an ``AnchorBasedFilePathMapping`` from the local checkout to the repository's layout). Both return
new definitions; the references live in the ``dagster/code_references`` definition metadata.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from assetpipe.definitions.assets import AssetsDefinition, AssetSpec
from assetpipe.definitions.ops import DefinitionError
from assetpipe.schemas.metadata import CodeReference, LocalFileCodeReference, MetadataValue, UrlCodeReference

CODE_REFERENCES_KEY = "dagster/code_references"


def CodeReferencesMetadataValue(code_references: Sequence[CodeReference]) -> MetadataValue:
    """Dagster's name for the ``code_references`` metadata value."""
    return MetadataValue.code_references(code_references)


class FilePathMapping:
    """Maps a local file to its path in the repository."""

    def convert_to_source_control_path(self, local_path: Path) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class AnchorBasedFilePathMapping(FilePathMapping):
    """``local_file_anchor`` (a local path) is ``file_anchor_path_in_repository`` in the repository; files
    below it keep their relative path."""

    local_file_anchor: Path
    file_anchor_path_in_repository: str

    def convert_to_source_control_path(self, local_path: Path) -> str:
        try:
            relative = Path(local_path).resolve().relative_to(Path(self.local_file_anchor).resolve())
        except ValueError as exc:
            raise DefinitionError(f"{local_path} is not under the anchor {self.local_file_anchor}") from exc
        return str(PurePosixPath(self.file_anchor_path_in_repository) / PurePosixPath(*relative.parts))


def _references(spec: AssetSpec) -> list[CodeReference]:
    value = spec.metadata.get(CODE_REFERENCES_KEY)
    return list(value.value) if value is not None else []


def _with_references(assets_def: AssetsDefinition, references: list[CodeReference]) -> AssetsDefinition:
    spec = assets_def.spec.merge_attributes(metadata={CODE_REFERENCES_KEY: MetadataValue.code_references(references)})
    return assets_def.with_spec(spec)


def with_source_code_references(assets_defs: Iterable[Any]) -> list[Any]:
    """Each asset with a function gains a reference to the file and first line of that function."""
    out: list[Any] = []
    for item in assets_defs:
        if not isinstance(item, AssetsDefinition) or item.fn is None:
            out.append(item)
            continue
        fn = inspect.unwrap(item.fn)
        try:
            path = inspect.getsourcefile(fn)
            line = inspect.getsourcelines(fn)[1]
        except (OSError, TypeError):
            out.append(item)
            continue
        if path is None:
            out.append(item)
            continue
        local = LocalFileCodeReference(file_path=str(Path(path).resolve()), line_number=line)
        out.append(_with_references(item, [*_references(item.spec), local]))
    return out


def _git_url(git_url: str, git_branch: str, path: str, line: int | None) -> str:
    base = git_url.rstrip("/")
    anchor = f"#L{line}" if line is not None else ""
    if "gitlab" in base:
        return f"{base}/-/tree/{git_branch}/{path}{anchor}"
    return f"{base}/tree/{git_branch}/{path}{anchor}"


def link_code_references_to_git(
    assets_defs: Iterable[Any],
    git_url: str,
    git_branch: str,
    file_path_mapping: FilePathMapping,
) -> list[Any]:
    """Local file references become links to ``git_url`` on ``git_branch`` (GitHub's and GitLab's URL
    forms), at the path ``file_path_mapping`` gives."""
    if not git_url.startswith(("http://", "https://")):
        raise DefinitionError(f"git_url must be an http(s) URL, got {git_url!r}")
    out: list[Any] = []
    for item in assets_defs:
        if not isinstance(item, AssetsDefinition) or not _references(item.spec):
            out.append(item)
            continue
        converted: list[CodeReference] = []
        for ref in _references(item.spec):
            if isinstance(ref, LocalFileCodeReference):
                path = file_path_mapping.convert_to_source_control_path(Path(ref.file_path))
                ref = UrlCodeReference(url=_git_url(git_url, git_branch, path, ref.line_number), label=ref.label)
            converted.append(ref)
        out.append(_with_references(item, converted))
    return out
