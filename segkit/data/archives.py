"""Reading what the user downloaded, archive (.zip, .tar, .tgz) or extracted
folder alike, and copying the selected files into data/ so that a re-run skips
what is already there and never overwrites a file it did not write.

A re-run over a big tar must read it again (tars have no index); a manifest
``<out>/.segkit-prepared/<archive>.json`` (output -> size) written after a
complete pass lets it skip the archive when every output is still there.
"""
from __future__ import annotations

import json
import os
import tarfile
import zipfile
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterable, Iterator, Optional

from segkit.data.parallel import progress_bar
from segkit.errors import SegkitError
from segkit.io import atomic_copy_stream, atomic_write_bytes


@dataclass
class Member:
    name: str  # path inside the archive or folder, '/'-separated
    size: int
    open: Callable[[], BinaryIO]  # valid while the iterator is at this member


@dataclass
class CopyStats:
    written: int = 0
    skipped: int = 0  # already there, same size
    outputs: dict = field(default_factory=dict)  # '/'-path relative to out root -> size


def _is_tar(path: str) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except (OSError, EOFError, tarfile.TarError):
        return False


def iter_members(path: str, desc: str, progress: bool = True) -> Iterator[Member]:
    """Every regular file of an archive or folder, with a progress bar."""
    if os.path.isdir(path):
        files = sorted((os.path.relpath(os.path.join(root, n), path).replace(os.sep, '/'),
                        os.path.join(root, n)) for root, _, names in os.walk(path)
                       for n in names)
        with progress_bar(desc, len(files), progress) as bar:
            for rel, full in files:
                yield Member(rel, os.path.getsize(full), lambda full=full: open(full, 'rb'))
                bar.advance()
    elif os.path.isfile(path) and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            with progress_bar(desc, sum(i.compress_size for i in infos), progress,
                              unit='bytes') as bar:
                for info in infos:
                    yield Member(info.filename, info.file_size, lambda info=info: zf.open(info))
                    bar.advance(info.compress_size)
    elif os.path.isfile(path) and _is_tar(path):
        # stream mode: one forward pass, never seeks back in a .tgz
        with open(path, 'rb') as raw, tarfile.open(fileobj=raw, mode='r|*') as tf, \
                progress_bar(desc, os.path.getsize(path), progress, unit='bytes') as bar:
            try:
                for info in tf:
                    if info.isfile():
                        yield Member(info.name, info.size,
                                     lambda info=info: tf.extractfile(info))
                    bar.update(raw.tell())
                bar.update(raw.tell())
            except (tarfile.TarError, EOFError, OSError) as err:
                raise SegkitError(f'{path} is truncated or corrupt ({err}): '
                                  'download it again') from None
    else:
        raise SegkitError(f'{path} is neither a folder nor a .zip/.tar/.tgz archive: '
                          'pass the downloaded archive or the folder it extracts to')


def safe_rel(rel: str) -> str:
    """A relative output path with no way out of the output folder."""
    parts = rel.replace('\\', '/').split('/')
    if rel.startswith('/') or any(p in ('', '.', '..') for p in parts):
        raise SegkitError(f'refusing archive member {rel!r}: its path leaves the output '
                          'folder (a broken or hostile archive); download it again')
    return os.path.join(*parts)


def copy_selected(members: Iterable, select: Callable[[str], Optional[str]],
                  out_root: str, source: str) -> CopyStats:
    """Copy every member whose name ``select`` maps to an output path, unless a
    complete copy is there; refuses (after the whole pass) when files there differ."""
    stats, conflicts = CopyStats(), []
    for m in members:
        rel = select(m.name)
        if not rel:
            continue
        dst = os.path.join(out_root, safe_rel(rel))
        if not os.path.isfile(dst):
            with m.open() as src:
                atomic_copy_stream(dst, src)
            stats.written += 1
        elif os.path.getsize(dst) == m.size:
            stats.skipped += 1
        else:
            conflicts.append(dst)  # not ours to overwrite
            continue
        stats.outputs[rel] = m.size
    if conflicts:
        raise SegkitError(
            f'{len(conflicts)} file(s) already in the output differ from {source} '
            f'(first: {conflicts[0]}); they were left untouched: move them away (or '
            'delete them if they are half-written) and re-run')
    return stats


def _manifest_path(out_root: str, archive: str) -> str:
    return os.path.join(out_root, '.segkit-prepared', os.path.basename(archive) + '.json')


def manifest_done(out_root: str, archive: str) -> bool:
    """Whether ``archive`` was fully processed into ``out_root`` and every output
    is still there with its size."""
    try:
        with open(_manifest_path(out_root, archive), encoding='utf-8') as f:
            man = json.load(f)
    except (OSError, ValueError):
        return False
    return os.path.isfile(archive) and man.get('archive_size') == os.path.getsize(archive) \
        and all(os.path.isfile(full := os.path.join(out_root, rel))
                and (size is None or os.path.getsize(full) == size)
                for rel, size in man.get('outputs', {}).items())


def write_manifest(out_root: str, archive: str, outputs: dict) -> None:
    man = dict(archive=os.path.basename(archive), archive_size=os.path.getsize(archive),
               outputs=outputs)
    atomic_write_bytes(_manifest_path(out_root, archive),
                       json.dumps(man, indent=0, sort_keys=True).encode('utf-8'))
