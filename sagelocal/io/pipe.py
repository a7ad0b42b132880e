"""The writer side of Pipe mode: stream a channel's files into FIFOs.

SageMaker streams a Pipe-mode channel into ``/opt/ml/input/data/<channel>_<epoch>``: one FIFO per epoch,
the next created once the previous one is finished, the channel's objects back to back (this host's
shard, shuffled per epoch, decompressed for ``CompressionType: Gzip``, each wrapped in one RecordIO
frame for ``RecordWrapperType: RecordIO``; the attributes of augmented-manifest lines). A
:class:`PipeFeeder` does the same from a local folder, in a background thread, so Pipe mode runs end to
end on one machine; ``sagelocal train`` starts one for every Pipe channel whose ``input/data/<channel>/``
is a folder of files.

Memory stays bounded by one 1 MiB chunk (one object per frame when wrapping in RecordIO, which needs the
object's length first). A reader that closes a FIFO early ends that epoch (the ``BrokenPipeError`` is
normal and swallowed); :meth:`PipeFeeder.stop` ends the feeding and removes the FIFO it left.
"""

from __future__ import annotations

import errno
import gzip
import os
import select
import stat
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

from ..base.errors import ChannelDataError
from .channel import Channel
from .manifest import attribute_bytes
from .recordio import _frame

_CHUNK = 1 << 20
_PIPE_SIZE = 1 << 20  # ask Linux for a 1 MiB pipe buffer (default 64 KiB): fewer wake-ups per epoch


class _Stopped(Exception):
    """The feeder was asked to stop."""


class PipeFeeder:
    """Feed a Pipe-mode channel's FIFOs ``<channel.path>_<epoch>`` from the files of a local folder.

    Parameters
    ----------
    channel : Channel
        The Pipe-mode channel as the algorithm reads it: its path is the FIFOs' base; its distribution,
        shuffle seed, host, compression, record wrapper, data type and attribute names shape the stream.
    source : str or Path, optional
        The folder (or file) holding the channel's objects or manifests; default ``channel.path``.
    epochs : int, optional
        Stop after this many epochs; default: feed until :meth:`stop` (as SageMaker does until the job
        ends).

    Attributes
    ----------
    error : BaseException or None
        What stopped the feeder thread, if anything other than :meth:`stop` or the last epoch.
    epochs_fed : int
        Epochs whose FIFO was opened by a reader and finished.
    """

    def __init__(self, channel: Channel, source=None, *, epochs: int | None = None):
        if channel.input_mode != "Pipe":
            raise ChannelDataError(f"a feeder needs a Pipe-mode channel; this one is {channel.input_mode}",
                                   channel=channel.name)
        self.channel = channel
        self.source = Path(source) if source is not None else channel.path
        self.epochs = epochs
        self.error: BaseException | None = None
        self.epochs_fed = 0
        self.poll_interval = 0.01
        self._view = Channel(self.source, channel.content_type, "File", name=channel.name,
                             distribution=channel.distribution, shuffle_seed=channel.shuffle_seed,
                             data_type=channel.data_type, attribute_names=channel.attribute_names,
                             s3_root=channel.s3_root, runtime=channel.runtime)
        self._view.objects(0)  # a missing folder, an empty channel or a bad manifest fails here, not in the thread
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fifo: Path | None = None

    def start(self) -> PipeFeeder:
        """Start feeding in a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"pipe-feeder-{self.channel.name}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop feeding, wait for the thread (up to ``timeout`` s) and remove the FIFO being fed."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        fifo = self._fifo
        if fifo is not None and _is_fifo(fifo):
            fifo.unlink(missing_ok=True)

    def __enter__(self) -> PipeFeeder:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # ------------------------------------------------------------------------------- the thread
    def _run(self) -> None:
        epoch = 0
        try:
            while not self._stop.is_set() and (self.epochs is None or epoch < self.epochs):
                self._feed(epoch)
                epoch += 1
        except _Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported through .error to the thread that reads
            self.error = exc

    def _feed(self, epoch: int) -> None:
        fifo = self.channel.pipe_path(epoch)
        if not _is_fifo(fifo):
            if fifo.exists():
                raise ChannelDataError(f"'{fifo}' exists and is not a FIFO", channel=self.channel.name)
            os.mkfifo(fifo)
        self._fifo = fifo
        fd = self._open(fifo)
        try:
            _grow_pipe(fd)
            self._write_all(fd, self._epoch_bytes(epoch))
        except BrokenPipeError:  # the reader closed the epoch early: normal
            pass
        finally:
            os.close(fd)
            fifo.unlink(missing_ok=True)
            self._fifo = None
        self.epochs_fed += 1

    def _open(self, fifo: Path) -> int:
        """Open ``fifo`` for writing once a reader has opened it (polling, so that stop() can interrupt)."""
        while True:
            if self._stop.is_set():
                raise _Stopped
            try:
                return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise
            self._stop.wait(self.poll_interval)

    def _write_all(self, fd: int, chunks: Iterator[bytes]) -> None:
        pending, size = [], 0
        for chunk in chunks:
            pending.append(chunk)
            size += len(chunk)
            if size >= _CHUNK:
                self._write(fd, b"".join(pending))
                pending, size = [], 0
        if pending:
            self._write(fd, b"".join(pending))

    def _write(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._stop.is_set():
                raise _Stopped
            _, writable, _ = select.select([], [fd], [], 0.1)
            if not writable:
                continue
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                continue

    def _epoch_bytes(self, epoch: int) -> Iterator[bytes]:
        """The bytes of one epoch: this host's objects (or manifest attributes) in the epoch's order."""
        channel, wrap = self.channel, self.channel.record_wrapper == "RecordIO"
        items = self._view.objects(epoch)  # reshuffled every epoch in Pipe mode
        if channel.data_type == "AugmentedManifestFile":
            for source, line, value in items:
                values = attribute_bytes(value, channel.attribute_names, s3_root=channel.s3_root,
                                         channel=channel.name, source=source, line=line)
                for name in channel.attribute_names:
                    yield _frame(values[name]) if wrap else values[name]
            return
        for path in items:
            yield from self._object(path, wrap)

    def _object(self, path: Path, wrap: bool) -> Iterator[bytes]:
        """One object's bytes, decompressed for ``CompressionType: Gzip`` (as SageMaker streams them)."""
        try:
            with (gzip.open(path, "rb") if self.channel.compression == "Gzip" else open(path, "rb")) as stream:
                if wrap:  # one frame per object: its length comes first
                    yield _frame(stream.read())
                    return
                while chunk := stream.read(_CHUNK):
                    yield chunk
        except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
            raise ChannelDataError(f"cannot stream '{path}' (CompressionType "
                                   f"{self.channel.compression or 'None'}): {exc}", channel=self.channel.name,
                                   source=str(path)) from None


def _is_fifo(path: Path) -> bool:
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False


def _grow_pipe(fd: int) -> None:
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
    except (ImportError, AttributeError, OSError):  # not Linux, or above /proc/sys/fs/pipe-max-size
        pass
