# nbdev 2.4.14's setup.py: all settings are in settings.ini; edit there, not here.
import shlex
from configparser import ConfigParser

import setuptools
from packaging.version import parse as parse_version

assert parse_version(setuptools.__version__)>=parse_version('36.2')

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding="utf-8")
cfg = config['DEFAULT']

cfg_keys = 'version description keywords author author_email'.split()
expected = cfg_keys + "lib_name user branch license status min_python audience language".split()
for o in expected: assert o in cfg, "missing expected setting: {}".format(o)
setup_cfg = {o:cfg[o] for o in cfg_keys}

licenses = {
    'apache2': ('Apache Software License 2.0','OSI Approved :: Apache Software License'),
    'mit': ('MIT License', 'OSI Approved :: MIT License'),
    'gpl2': ('GNU General Public License v2', 'OSI Approved :: GNU General Public License v2 (GPLv2)'),
    'gpl3': ('GNU General Public License v3', 'OSI Approved :: GNU General Public License v3 (GPLv3)'),
    'agpl3': ('GNU Affero General Public License v3', 'OSI Approved :: GNU Affero General Public License (AGPLv3)'),
    'bsd3': ('BSD License', 'OSI Approved :: BSD License'),
}
statuses = [ '0 - Pre-Planning', '1 - Planning', '2 - Pre-Alpha', '3 - Alpha',
    '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive' ]
# nbdev 2.4.14's list skips 3.11, which is our min_python
py_versions = '3.7 3.8 3.9 3.10 3.11 3.12 3.13'.split()

requirements = ['packaging']
requirements += shlex.split(cfg.get('requirements', ''))

def _opencv_requirement():
    """OpenCV as opencv-python-headless, unless the environment srwork goes into has another flavour (the same cv2 module:
    two flavours installed overwrite each other's files). pip builds in an isolated environment, so the installed
    packages are asked of the target interpreter itself (`python -I` ignores the isolation's path settings)."""
    import subprocess, sys
    code = ("from importlib.metadata import version\n"
            "for f in ('opencv-python', 'opencv-contrib-python', 'opencv-contrib-python-headless'):\n"
            "    try: print(f, version(f)); break\n"
            "    except Exception: pass")
    try: found = subprocess.run([sys.executable, '-I', '-c', code], capture_output=True, text=True, timeout=60).stdout.split()
    except Exception: found = []
    return f"{found[0]}>=4.9" if len(found) == 2 else 'opencv-python-headless>=4.9,<6'
requirements.append(_opencv_requirement())
if cfg.get('pip_requirements'): requirements += shlex.split(cfg.get('pip_requirements', ''))
min_python = cfg['min_python']
lic = licenses.get(cfg['license'].lower(), (cfg['license'], None))
dev_requirements = shlex.split(cfg.get('dev_requirements') or '')
# optional extras: `<name>_requirements = ...` in settings.ini gives `pip install 'srwork[<name>]'`; dev gets them all but
# those of `dev_skip_extras` (pyiqa: transformers, datasets, timm, bitsandbytes; the tests need none of it)
extras = {k[:-len('_requirements')]: shlex.split(v) for k, v in cfg.items()
          if k.endswith('_requirements') and k not in ('dev_requirements', 'pip_requirements', 'conda_requirements')}
dev_extras = [r for k, v in extras.items() if k not in cfg.get('dev_skip_extras', '').split() for r in v]
project_urls = {}
if cfg.get('doc_host'): project_urls["Documentation"] = cfg['doc_host'] + cfg.get('doc_baseurl', '')

setuptools.setup(
    name = cfg['lib_name'],
    license = lic[0],
    classifiers = [
        'Development Status :: ' + statuses[int(cfg['status'])],
        'Intended Audience :: ' + cfg['audience'].title(),
        'Natural Language :: ' + cfg['language'].title(),
    ] + ['Programming Language :: Python :: '+o for o in py_versions[py_versions.index(min_python):]] + (['License :: ' + lic[1] ] if lic[1] else []),
    url = cfg['git_url'],
    packages = setuptools.find_packages(include=[cfg['lib_path'], cfg['lib_path']+'.*']),
    include_package_data = True,
    package_data = {cfg['lib_path']: ['assets/web/*', 'assets/niqe/*']},      # the browser page's JavaScript, HTML and CSS, NIQE's pristine model (nbdev exports Python only)
    install_requires = requirements,
    extras_require={ 'dev': dev_requirements + dev_extras, **extras },
    dependency_links = cfg.get('dep_links','').split(),
    python_requires  = '>=' + cfg['min_python'],
    long_description = open('README.md', encoding="utf8").read(),
    long_description_content_type = 'text/markdown',
    zip_safe = False,
    entry_points = {
        'console_scripts': cfg.get('console_scripts','').split(),
        'nbdev': [f'{cfg.get("lib_path")}={cfg.get("lib_path")}._modidx:d']
    },
    project_urls = project_urls,
    **setup_cfg)
