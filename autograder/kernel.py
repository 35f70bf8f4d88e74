"""The course's Python kernel, and the kernel-spec manager that makes JupyterLab start it.

JupyterLab copies a kernel's ``language_info`` into the notebook's metadata once the kernel is connected,
and marks the notebook modified when the copy differs from the file. ipykernel reports the exact Python
version (3.11.2 from Debian on the workshop hub, 3.11.7 on this project's machines, 3.11.9 on a learner's
laptop), so no released file could match them all. The course kernel is ipykernel's own kernel, reporting
the language version at the precision the course pins Python (``requires-python = "==3.11.*"``): major and
minor, ``3.11``. The release writes the same value (``autograder.release.LAB_METADATA``), so an untouched
notebook opens unmodified on every Python the course supports (tests/test_lab_untouched.py, test_kernel.py).

``CourseKernelSpecManager`` (``ServerApp.kernel_spec_manager_class`` in the course's Jupyter server
configuration: autograder/jupyter_server_config.py, and the workshop hub's learner configuration) starts
that kernel for the notebooks' kernelspec, ``python3``, with the server's own Python, which is the course's
environment even where a learner's machine has another ``python3`` kernelspec installed (a user-level
one points at some other environment). Other kernelspecs are left as they are. Outside the course's servers
(another Jupyter, nbgrader's Validate, the grader) the plain ipykernel runs; only the reported version differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from jupyter_client.kernelspec import NATIVE_KERNEL_NAME, KernelSpecManager


def language_version(version_info=sys.version_info) -> str:
    """The Python version as the course states it: ``"3.11"`` for any 3.11.x."""
    return f"{version_info[0]}.{version_info[1]}"


def kernel_argv(python: str = sys.executable) -> list[str]:
    """The command that starts the course kernel with ``python`` (``{connection_file}`` as Jupyter fills it)."""
    return [python, "-m", "autograder.kernel", "-f", "{connection_file}"]


class CourseKernelSpecManager(KernelSpecManager):
    """ipykernel's ``python3`` kernelspec, started as the course kernel with this server's Python."""

    def get_kernel_spec(self, kernel_name):
        spec = super().get_kernel_spec(kernel_name)
        if kernel_name == NATIVE_KERNEL_NAME:
            spec.argv = kernel_argv()
        return spec


def course_kernel_class():
    """``IPythonKernel`` whose info reply says ``language_version()`` (imported here, not at module level:
    the kernel process imports ipykernel only after the notebook's folder has left ``sys.path``)."""
    from ipykernel.ipkernel import IPythonKernel

    class CourseKernel(IPythonKernel):
        language_info = {**IPythonKernel.language_info, "version": language_version()}

    return CourseKernel


def main():
    # As ipykernel_launcher does: the notebook's folder (the kernel's working directory) leaves sys.path while
    # the kernel loads, so a learner's file named like a module cannot replace it; IPython puts it back.
    if sys.path and (sys.path[0] == "" or Path(sys.path[0]) == Path.cwd()):
        del sys.path[0]
    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(kernel_class=course_kernel_class())


if __name__ == "__main__":
    main()
