"""`srwork ARGS` run by `srwork.cli.main` in the test's own process, its result shaped as `subprocess.run`'s.

A fresh process spends seconds importing torch and fastai before it does anything, and most command-line tests check
what the program does, not how it starts. Those run the same `main` here: exit code, stdout and stderr as a user sees
them (warnings shown every time, as in a fresh process), in the working folder and environment asked for. Tests of the
start itself, of Ctrl-C, of memory caps and of several processes keep real subprocesses."""
import contextlib, io, os, subprocess, sys, warnings


@contextlib.contextmanager
def _environment(cwd=None, env=None):
    "Within: the working folder `cwd` and the variables of `env` set (None: unset), as they were after."
    old_cwd, old_env = os.getcwd(), {k: os.environ.get(k) for k in (env or {})}
    try:
        if cwd is not None: os.chdir(cwd)
        for k, v in (env or {}).items():
            if v is None: os.environ.pop(k, None)
            else: os.environ[k] = str(v)
        yield
    finally:
        os.chdir(old_cwd)
        for k, v in old_env.items():
            if v is None: os.environ.pop(k, None)
            else: os.environ[k] = v


def _to_stderr(message, category, filename, lineno, file=None, line=None):
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _fresh_process_warnings():
    "Warnings as a fresh `srwork` process has them: Python's default filters and srwork's own (pytest's are replaced), each shown again, on stderr."
    from srwork.core import _ignore_unactionable_warnings
    warnings.resetwarnings()
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning): warnings.simplefilter('ignore', category)
    warnings.filterwarnings('default', category=DeprecationWarning, module='__main__')
    _ignore_unactionable_warnings()
    warnings.showwarning = _to_stderr                # (pytest records warnings instead of showing them)


def srwork_in_process(*args, cwd=None, env=None) -> subprocess.CompletedProcess:
    "Run `srwork ARGS` with `srwork.cli.main` here; its exit code and output as a subprocess would have given them."
    from srwork.cli import main
    out, err = io.StringIO(), io.StringIO()
    with _environment(cwd, env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        _fresh_process_warnings()
        try: rc = main([str(a) for a in args])
        except SystemExit as e: rc = e.code if isinstance(e.code, int) else 0 if e.code is None else 1     # argparse: usage errors, --help
    return subprocess.CompletedProcess(['srwork', *map(str, args)], rc, out.getvalue(), err.getvalue())
