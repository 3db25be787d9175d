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
