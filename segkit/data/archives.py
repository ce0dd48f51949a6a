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

ARCHIVE_SUFFIXES = ('.zip', '.tar', '.tgz', '.tar.gz', '.tar.bz2', '.tar.xz')


@dataclass
class Member:
    name: str  # path inside the archive or folder, '/'-separated
    size: int
    open: Callable[[], BinaryIO]  # valid while the iterator is at this member


@dataclass
class CopyStats:
    written: int = 0
    skipped: int = 0  # already there, same size
    conflicts: list = field(default_factory=list)  # there, different: left alone
    outputs: dict = field(default_factory=dict)  # path relative to out root -> size


def archive_kind(path: str) -> Optional[str]:
    """'zip', 'tar' (any compression) or None."""
    if not os.path.isfile(path):
        return None
    if zipfile.is_zipfile(path):
        return 'zip'
    try:
        return 'tar' if tarfile.is_tarfile(path) else None
    except (OSError, EOFError, tarfile.TarError):
        return None


class _CountingReader:
    """A file object that remembers how far it has been read (tar progress)."""

    def __init__(self, f):
        self._f, self.pos = f, 0

    def read(self, n=-1):
        data = self._f.read(n)
        self.pos += len(data)
        return data


def iter_members(path: str, desc: str, progress: bool = True) -> Iterator[Member]:
    """Every regular file of an archive or folder, with a progress bar."""
    if os.path.isdir(path):
        files = []
        for root, _, names in os.walk(path):
            for n in names:
                full = os.path.join(root, n)
                files.append((os.path.relpath(full, path).replace(os.sep, '/'), full))
        files.sort()
        with progress_bar(desc, len(files), progress) as bar:
            for rel, full in files:
                yield Member(rel, os.path.getsize(full),
                             lambda full=full: open(full, 'rb'))
                bar.advance()
        return
    kind = archive_kind(path)
    if kind == 'zip':
        with zipfile.ZipFile(path) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            with progress_bar(desc, sum(i.compress_size for i in infos), progress,
                              unit='bytes') as bar:
                for info in infos:
                    yield Member(info.filename, info.file_size,
                                 lambda info=info: zf.open(info))
                    bar.advance(info.compress_size)
    elif kind == 'tar':
        with open(path, 'rb') as raw:
            reader = _CountingReader(raw)
            # stream mode: one forward pass, never seeks back in a .tgz
            with tarfile.open(fileobj=reader, mode='r|*') as tf, \
                    progress_bar(desc, os.path.getsize(path), progress,
                                 unit='bytes') as bar:
                try:
                    for info in tf:
                        if info.isfile():
                            yield Member(info.name, info.size,
                                         lambda info=info: tf.extractfile(info))
                        bar.update(reader.pos)
                except (tarfile.TarError, EOFError, OSError) as err:
                    raise SegkitError(f'{path} is truncated or corrupt ({err}): '
                                      'download it again') from None
                bar.update(reader.pos)
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


def place(out_root: str, rel: str, member: Member, stats: CopyStats) -> None:
    """Copy ``member`` to ``out_root/rel`` unless a complete copy is there."""
    rel = safe_rel(rel)
    dst = os.path.join(out_root, rel)
    if os.path.isfile(dst):
        if os.path.getsize(dst) != member.size:
            stats.conflicts.append(dst)  # not ours to overwrite
            return
        stats.skipped += 1
    else:
        with member.open() as src:
            atomic_copy_stream(dst, src)
        stats.written += 1
    stats.outputs[rel.replace(os.sep, '/')] = member.size


def copy_selected(members: Iterable, select: Callable[[str], Optional[str]],
                  out_root: str, source: str) -> CopyStats:
    """``place`` every member whose name ``select`` maps to an output path; refuses
    (after the whole pass) when files already there differ."""
    stats = CopyStats()
    for m in members:
        rel = select(m.name)
        if rel:
            place(out_root, rel, m, stats)
    if stats.conflicts:
        raise conflict_error(stats, source)
    return stats


def conflict_error(stats: CopyStats, source: str) -> SegkitError:
    first = stats.conflicts[0]
    return SegkitError(
        f'{len(stats.conflicts)} file(s) already in the output differ from {source} '
        f'(first: {first}); they were left untouched: move them away (or delete them '
        'if they are half-written) and re-run')


# ---------------------------------------------------------------- manifests

def _manifest_path(out_root: str, archive: str) -> str:
    return os.path.join(out_root, '.segkit-prepared', os.path.basename(archive) + '.json')


def manifest_done(out_root: str, archive: str) -> Optional[dict]:
    """The manifest's outputs if ``archive`` was fully processed into
    ``out_root`` and every output is still there with its size, else None."""
    path = _manifest_path(out_root, archive)
    if not os.path.isfile(archive) or not os.path.isfile(path):
        return None
    try:
        with open(path, encoding='utf-8') as f:
            man = json.load(f)
    except (OSError, ValueError):
        return None
    if man.get('archive_size') != os.path.getsize(archive):
        return None
    outputs = man.get('outputs', {})
    for rel, size in outputs.items():
        full = os.path.join(out_root, rel)
        if not os.path.isfile(full) or (size is not None and os.path.getsize(full) != size):
            return None
    return man


def write_manifest(out_root: str, archive: str, outputs: dict, **extra) -> None:
    man = dict(archive=os.path.basename(archive), archive_size=os.path.getsize(archive),
               outputs=outputs, **extra)
    atomic_write_bytes(_manifest_path(out_root, archive),
                       json.dumps(man, indent=0, sort_keys=True).encode('utf-8'))
