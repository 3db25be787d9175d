"""The kernel manager of report runs: the kernel talks to papermill over local sockets only.

Jupyter's default transport is TCP on 127.0.0.1 without encryption, and ipykernel (7+) warns
about it at every start ("Kernel is running over TCP without encryption ..."): any process on
the machine could connect to the open ports. A report run needs no network at all, so on
POSIX its kernel uses ZeroMQ's IPC transport: Unix sockets in a private folder (mode 0700,
removed with the kernel), which nothing but this user can open. Where IPC does not exist
(Windows), the kernel keeps TCP and the manager provisions CurveZMQ keys when pyzmq has
them and the kernelspec declares support (jupyter_client's ``transport_encryption="auto"``).

At the end of a run the kernel is asked to shut down without the interrupt (SIGINT) that
jupyter_client sends first, which raced the kernel's last message handler and made it log a
KeyboardInterrupt. Nothing is hidden: the kernel's own errors and warnings still reach stderr.
"""
from __future__ import annotations

import os
import shutil
import tempfile

import zmq
from jupyter_client import AsyncKernelManager


class LocalKernelManager(AsyncKernelManager):
    """An :class:`~jupyter_client.AsyncKernelManager` whose kernel listens on Unix sockets.

    Pass it to papermill as ``kernel_manager_class`` (nbclient's trait of that name).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._socket_dir = None
        if os.name == "posix":
            # short, private path: Unix socket paths are limited to ~104 bytes
            self._socket_dir = tempfile.mkdtemp(prefix="cxlab-kernel-")
            self.transport = "ipc"
            self.connection_file = os.path.join(self._socket_dir, "kernel.json")
            self.ip = os.path.join(self._socket_dir, "kernel")
        elif zmq.has("curve") and self.has_trait("transport_encryption"):
            self.transport_encryption = "auto"

    _shutting_down_run = False

    async def _async_shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        # jupyter_client interrupts (SIGINT) a kernel before asking it to shut down. A report
        # run shuts its kernel down only once the notebook is done (nbclient interrupts a
        # cell that times out itself), and the interrupt then races the kernel's last
        # message handler ("[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.").
        # So no interrupt here: the shutdown request, then SIGTERM and SIGKILL if ignored.
        self._shutting_down_run = True
        try:
            await super()._async_shutdown_kernel(now=now, restart=restart)
        finally:
            self._shutting_down_run = False

    async def _async_interrupt_kernel(self) -> None:
        if self._shutting_down_run:
            return
        await super()._async_interrupt_kernel()

    shutdown_kernel = _async_shutdown_kernel
    interrupt_kernel = _async_interrupt_kernel

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart and self._socket_dir:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    cleanup_resources = _async_cleanup_resources


def notebook_imports(path) -> list[str]:
    """The modules a notebook's code cells import (``import a.b``, ``from a import b``: ``a.b``
    and ``a``), in order, for :func:`start_warm_kernel`. Cells that do not parse are skipped."""
    import ast

    import nbformat

    mods: list[str] = []
    for cell in nbformat.read(str(path), as_version=4).cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                mods.append(node.module)
                mods += [f"{node.module}.{a.name}" for a in node.names if a.name != "*"]
    return list(dict.fromkeys(mods))


#: what the warm-up imports beside the notebook's own imports: libraries the analyses import
#: lazily, inside functions, which cost seconds at first use
WARM_EXTRA = ("sklearn.linear_model", "sklearn.model_selection", "sklearn.metrics", "statsmodels.api",
              "scipy.stats", "matplotlib_inline.backend_inline")


def start_warm_kernel(kernel_name: str, *, cwd, modules=()) -> LocalKernelManager:
    """Start a report kernel in ``cwd`` and import ``modules`` in it, before its notebook runs.

    The imports run silently inside a function (no name lands in the notebook's namespace,
    the execution count stays at 0, nothing reaches the executed notebook); a module that
    fails to import is skipped (the notebook's own import then reports the error). Hand the
    manager to papermill as ``km=``; the caller shuts it down (:func:`shutdown_kernel`).
    """
    from jupyter_core.utils import run_sync

    km = LocalKernelManager(kernel_name=kernel_name)
    run_sync(km.start_kernel)(cwd=str(cwd))
    code = ("def __cxlab_warm(mods):\n    import importlib\n    for m in mods:\n        try:\n"
            "            importlib.import_module(m)\n        except Exception:\n            pass\n"
            f"__cxlab_warm({list(modules)!r})\ndel __cxlab_warm\n")
    try:
        kc = km.blocking_client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
            msg_id = kc.execute(code, silent=True, store_history=False)
            while True:
                reply = kc.get_shell_msg(timeout=300)
                if reply["parent_header"].get("msg_id") == msg_id:
                    break
        finally:
            kc.stop_channels()
    except BaseException:
        shutdown_kernel(km)
        raise
    return km


def shutdown_kernel(km: LocalKernelManager) -> None:
    """Shut a kernel started by :func:`start_warm_kernel` down and remove its sockets."""
    from jupyter_core.utils import run_sync

    try:
        if run_sync(km.is_alive)():
            run_sync(km.shutdown_kernel)(now=False)
    finally:
        run_sync(km.cleanup_resources)()
