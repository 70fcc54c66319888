"""Optional compiled CPU kernels, built on first use with the system C compiler.

Some training objectives spend most of their time, at small batch sizes, on
the fixed cost of many small tensor operations rather than on arithmetic.
For those, skinfo ships plain C sources (``skinfo/nn/_kernels``) that do the
same computation in one pass. On first use in a process they are compiled
with the system C compiler (``$CC``, else ``cc``, ``gcc`` or ``clang``),
cached as a shared library under ``$SKINFO_CACHE_DIR`` (default
``~/.cache/skinfo``; a temporary directory if that is not writable), and
loaded through :mod:`ctypes`. The first compilation takes well under a
second; later processes load the cached library.

Nothing depends on them: without a compiler, when compilation or the
built-in self-test fails, with the environment variable ``SKINFO_NATIVE=0``
or inside :func:`use_native` ``(False)``, the same computation runs in
PyTorch (the results agree to float32 rounding). :func:`native_status` says
which path is used and why.

Examples
--------
>>> from skinfo.nn.native import native_status
>>> native_status().split(":")[0] in ("loaded", "unavailable", "disabled")
True
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: Directory of the C sources.
SOURCE_DIR = Path(__file__).parent / "_kernels"
#: Version of the C interface the Python side expects (``skinfo_vib_abi_version``).
ABI_VERSION = 6
#: Flags common to every build; ``-march=native`` is tried first and dropped if refused.
BASE_FLAGS = (
    "-std=c99",
    "-O3",
    "-fPIC",
    "-shared",
    "-fopenmp-simd",
    "-fno-math-errno",
    "-fno-trapping-math",
    "-ffp-contract=fast",  # fused multiply-adds in the polynomials
)
_ENV_SWITCH = "SKINFO_NATIVE"
_ENV_CACHE = "SKINFO_CACHE_DIR"
_COMPILE_TIMEOUT_S = 120


class VIBKernels:
    """ctypes bindings of ``vib_kernels.c`` (see that file for the formulas and layouts).

    ``forward(h, eps, shift, W, bias, z, logits, rate, aux, B, K, C)`` (returns
    0, or -1 when out of memory) and ``backward(h, aux, W, z, grad_z,
    grad_logits, grad_rate, grad_h, grad_W, grad_bias, B, K, C)`` take data
    pointers (ints, or None for an absent optional tensor; ``grad_rate`` points
    to one float) and sizes;
    ``C = 0`` means no decoder; ``aux`` is a ``(2, B, K)`` buffer that the
    forward pass fills for the backward pass.
    """

    def __init__(self, library: ctypes.CDLL, path: Path) -> None:
        p, i64, f32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float
        self.path = path
        self.forward = library.skinfo_vib_forward
        self.forward.argtypes = [p, p, f32, p, p, p, p, p, p, i64, i64, i64]
        self.forward.restype = ctypes.c_int
        self.backward = library.skinfo_vib_backward
        self.backward.argtypes = [p, p, p, p, p, p, p, p, p, p, i64, i64, i64]
        self.backward.restype = None
        self._library = library  # keeps the library loaded


def _compiler() -> list[str] | None:
    """The C compiler command: ``$CC`` (e.g. ``"ccache gcc"``), else cc, gcc or clang on PATH."""
    configured = shlex.split(os.environ.get("CC", ""))
    if configured:
        found = shutil.which(configured[0])
        return [found, *configured[1:]] if found else None
    for name in ("cc", "gcc", "clang"):
        found = shutil.which(name)
        if found:
            return [found]
    return None


def _cpu_signature() -> str:
    """What ``-march=native`` depends on: the CPU's model and feature flags."""
    parts = [platform.machine(), platform.processor()]
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":")[0].strip() in ("model name", "flags", "Features", "CPU part"):
                parts.append(line)
                if len(parts) > 5:
                    break
    return "\n".join(parts)


def _private_dir(directory: Path) -> bool:
    """``directory`` exists (created 0700 if missing), is ours and not writable by others."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = directory.stat()
    except OSError:
        return False
    owner_ok = not hasattr(os, "getuid") or info.st_uid == os.getuid()
    return owner_ok and not info.st_mode & 0o022 and os.access(directory, os.W_OK)


def _cache_dir() -> Path:
    """A writable directory for built libraries that only this user can write to.

    ``$SKINFO_CACHE_DIR`` if set (trusted as given), else ``~/.cache/skinfo``,
    else a per-user directory under the temporary directory; a directory that
    another user owns or can write to is never used (a library found there is
    loaded and run).
    """
    configured = os.environ.get(_ENV_CACHE)
    if configured:
        directory = Path(configured)
        directory.mkdir(parents=True, exist_ok=True)
        return directory
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "skinfo"
    user = getattr(os, "getuid", lambda: "user")()
    fallback = Path(tempfile.gettempdir()) / f"skinfo-cache-{user}"
    for directory in (base, fallback):
        if _private_dir(directory):
            return directory
    raise OSError(f"no private writable cache directory ({base}, {fallback})")


def build_library(name: str, cache_dir: Path | None = None, compiler: str | None = None) -> Path:
    """Compile ``_kernels/<name>.c`` into a shared library, or return the cached one.

    The file name holds a hash of the source, the compiler, the flags and the
    CPU, so a changed source or another machine sharing the cache directory
    gets its own build. The library is written under a temporary name and
    renamed into place, so concurrent processes never load a partial file.

    Raises
    ------
    RuntimeError
        No compiler, or every compilation attempt failed (the message holds
        the compiler's output).
    """
    command = [compiler] if compiler else _compiler()
    if command is None:
        raise RuntimeError("no C compiler found ($CC, cc, gcc or clang)")
    source = SOURCE_DIR / f"{name}.c"
    code = source.read_bytes()
    if cache_dir is None:
        cache_dir = _cache_dir()
    else:
        cache_dir = Path(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
    suffix = ".dll" if sys.platform == "win32" else ".so"
    errors = []
    for arch in (("-march=native",), ()):
        flags = (*BASE_FLAGS, *arch)
        parts = [code, " ".join(command).encode(), " ".join(flags).encode()]
        parts.append(_cpu_signature().encode())
        key = hashlib.sha256(b"\0".join(parts)).hexdigest()[:20]
        target = cache_dir / f"{name}-{key}{suffix}"
        if target.exists():
            return target
        partial = None
        try:
            fd, partial = tempfile.mkstemp(prefix=f".{name}-", suffix=suffix, dir=cache_dir)
            os.close(fd)
            result = subprocess.run(
                [*command, *flags, "-o", partial, str(source)],
                capture_output=True,
                text=True,
                timeout=_COMPILE_TIMEOUT_S,
            )
            if result.returncode == 0:
                os.replace(partial, target)
                partial = None  # nothing to clean up (the name may be reused by now)
                return target
            errors.append(f"{' '.join(flags)}: {(result.stderr or result.stdout).strip()[-500:]}")
        except (OSError, subprocess.SubprocessError) as error:
            errors.append(f"{' '.join(flags)}: {error}")
        finally:
            if partial is not None:
                with contextlib.suppress(OSError):
                    os.unlink(partial)
    raise RuntimeError(f"compiling {source.name} failed: " + " | ".join(errors))


def load_vib_kernels(cache_dir: Path | None = None, compiler: str | None = None) -> VIBKernels:
    """Build (or reuse) and load the VIB kernels, and check them against PyTorch.

    Raises
    ------
    RuntimeError
        Building, loading or the self-test failed.
    """
    path = build_library("vib_kernels", cache_dir, compiler)
    try:
        library = ctypes.CDLL(str(path))
        version = library.skinfo_vib_abi_version()
    except (OSError, AttributeError) as error:
        raise RuntimeError(f"loading {path} failed: {error}") from error
    if version != ABI_VERSION:
        raise RuntimeError(f"{path} has interface version {version}, expected {ABI_VERSION}")
    kernels = VIBKernels(library, path)
    _self_test(kernels)
    return kernels


def _self_test(kernels: VIBKernels) -> None:
    """Compare one forward and backward with the PyTorch formulas (float64) on a small batch.

    Covers the vector loop and its remainder (K = 19), every branch of
    softplus (t from -30 to 30), the decoder (C = 3) and a backward pass with
    the rate's gradient alone.
    """
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(0)
    b, k, c, shift = 5, 19, 3, 5.0
    h = torch.randn(b, 2 * k, generator=gen)
    h[:, k:] = torch.linspace(-25.0, 35.0, b * k).reshape(b, k)
    eps, grad_z = torch.randn(b, k, generator=gen), torch.randn(b, k, generator=gen)
    weight, bias = torch.randn(c, k, generator=gen), torch.randn(c, generator=gen)
    grad_logits = torch.randn(b, c, generator=gen)
    z, logits, rate, aux = (
        torch.empty(b, k),
        torch.empty(b, c),
        torch.empty(()),
        torch.empty(2, b, k),
    )
    grad_h, grad_w, grad_b = torch.empty(b, 2 * k), torch.empty(c, k), torch.empty(c)
    grad_rate = torch.tensor(0.75)
    ptr = torch.Tensor.data_ptr
    status = kernels.forward(
        *(ptr(h), ptr(eps), shift, ptr(weight), ptr(bias)),
        *(ptr(z), ptr(logits), ptr(rate), ptr(aux), b, k, c),
    )
    if status != 0:
        raise RuntimeError("self-test failed: the forward kernel returned an error")
    kernels.backward(
        *(ptr(h), ptr(aux), ptr(weight), ptr(z), ptr(grad_z), ptr(grad_logits)),
        ptr(grad_rate),
        *(ptr(grad_h), ptr(grad_w), ptr(grad_b), b, k, c),
    )
    leaves = [t.double().requires_grad_() for t in (h, weight, bias)]
    h64, w64, b64 = leaves
    mean, rho = h64.chunk(2, dim=-1)
    std = F.softplus(rho - shift)
    z64 = mean + std * eps.double()
    logits64 = F.linear(z64, w64, b64)
    rate64 = (0.5 * (mean**2 + std**2 - 1.0) - torch.log(std)).sum(-1).mean()
    objective = (z64 * grad_z.double()).sum() + (logits64 * grad_logits.double()).sum()
    grads = torch.autograd.grad(objective + float(grad_rate) * rate64, leaves, retain_graph=True)
    checks = [("z", z, z64), ("logits", logits, logits64), ("rate", rate, rate64)]
    checks += list(zip(("grad_h", "grad_W", "grad_bias"), (grad_h, grad_w, grad_b), grads))
    # the rate alone (no gradient for z or the logits): the path of an unused output
    grad_rate_only = torch.empty(b, 2 * k)
    kernels.backward(
        *(ptr(h), ptr(aux), None, None, None, None, ptr(grad_rate)),
        *(ptr(grad_rate_only), None, None, b, k, 0),
    )
    (grad_rate64,) = torch.autograd.grad(float(grad_rate) * rate64, h64)
    checks.append(("grad_h (rate only)", grad_rate_only, grad_rate64))
    for name, got, want in checks:
        want = want.detach()
        if not torch.allclose(got.double(), want, rtol=1e-5, atol=1e-5 * float(want.abs().max())):
            raise RuntimeError(f"self-test failed: {name} differs from the PyTorch computation")


_STATUS: dict[str, str] = {}
_SWITCH = {"enabled": True}


@functools.cache
def _loaded_vib_kernels() -> VIBKernels | None:
    if os.environ.get(_ENV_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        _STATUS["vib"] = f"disabled: {_ENV_SWITCH}={os.environ[_ENV_SWITCH]}"
        return None
    try:
        kernels = load_vib_kernels()
    except Exception as error:  # noqa: BLE001 - any failure: use the PyTorch path
        _STATUS["vib"] = f"unavailable: {error}"
        return None
    _STATUS["vib"] = f"loaded: {kernels.path}"
    return kernels


def vib_kernels() -> VIBKernels | None:
    """The loaded VIB kernels, or None (see :func:`native_status` for the reason).

    Built and checked once per process, on first call; None inside
    ``use_native(False)``.
    """
    return _loaded_vib_kernels() if _SWITCH["enabled"] else None


def native_status() -> str:
    """Whether the compiled kernels are used: ``'loaded: <path>'``, ``'unavailable: <why>'``
    or ``'disabled: ...'``. Builds and loads them if that has not happened yet."""
    if not _SWITCH["enabled"]:
        return "disabled: inside use_native(False)"
    vib_kernels()
    return _STATUS["vib"]


@contextlib.contextmanager
def use_native(enabled: bool) -> Iterator[None]:
    """Context manager: with ``enabled=False``, train and predict through PyTorch only.

    For comparisons (``benchmarks/vib.py`` times both paths) and debugging.
    Process-wide (not thread-local); ``enabled=True`` cannot load kernels that
    are unavailable.

    Examples
    --------
    >>> from skinfo.nn.native import native_status, use_native
    >>> with use_native(False):
    ...     print(native_status())
    disabled: inside use_native(False)
    """
    previous = _SWITCH["enabled"]
    _SWITCH["enabled"] = bool(enabled)
    try:
        yield
    finally:
        _SWITCH["enabled"] = previous
