"benchmarks/gpu_check.py, the script a developer who draws a GPU runs first, works where CI runs: CPU only, CUDA parts skipped."
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_on_a_cpu_and_says_what_it_skipped():
    r = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'gpu_check.py'), '--cpu', '--quick', '--parts', 'notebooks', 'tests', 'train',
                        'upscale', 'ddp'], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    table = r.stdout[r.stdout.index('\npart '):]
    for part in ('notebooks', 'tests', 'upscale', 'ddp'):
        assert any(l.startswith(part) and 'skipped (no CUDA)' in l for l in table.splitlines()), (part, table)
    rows = {l.split()[1]: l for l in table.splitlines() if l.startswith('train ')}
    assert set(rows) == {'fp32', 'channels-last', 'bf16'}, table
    for name, line in rows.items():
        it_s, bare = float(line.split(' it/s')[0].split()[-1]), float(line.split('bare loop ')[1].split()[0])
        assert it_s > 0 and bare > 0 and ' ok ' in line, line


def test_gpu_check_reports_a_failing_part_and_exits_1():
    r = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'gpu_check.py'), '--cpu', '--parts', 'no-such-part'],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 1 and "unknown part 'no-such-part'" in r.stdout, r.stdout + r.stderr
