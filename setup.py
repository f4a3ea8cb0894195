"""kd_det: knowledge distillation, sparse BiFPN and pruning for MMDetection detectors."""
import os
import os.path as osp
import shutil

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_requirements(name):
    path = osp.join(HERE, 'requirements', name)
    with open(path) as f:
        return [
            line.strip() for line in f
            if line.strip() and not line.startswith('#')
        ]


def add_mim_extension():
    """Expose configs/ and tools/ as kd_det/.mim so `mim train kd_det ...` finds them.

    An editable install links them (the checkout stays the single source); a regular install
    copies them into the package.
    """
    mim_root = osp.join(HERE, 'kd_det', '.mim')
    os.makedirs(mim_root, exist_ok=True)
    editable = 'develop' in os.sys.argv or 'editable_wheel' in os.sys.argv
    for name in ('configs', 'tools', 'model-index.yml'):
        src, dst = osp.join(HERE, name), osp.join(mim_root, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if editable:
            os.symlink(osp.relpath(src, mim_root), dst, target_is_directory=osp.isdir(src))
        elif osp.isdir(src):
            shutil.copytree(src, dst)
        else:
            shutil.copyfile(src, dst)


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='kd_det',
        version='0.1.0',
        description='Knowledge distillation, sparse BiFPN and pruning for MMDetection',
        long_description=open(osp.join(HERE, 'README.md')).read()
        if osp.exists(osp.join(HERE, 'README.md')) else '',
        long_description_content_type='text/markdown',
        packages=find_packages(exclude=('configs', 'tools', 'tests')),
        include_package_data=True,
        package_data={'kd_det': ['.mim/configs/**/*', '.mim/tools/*', '.mim/model-index.yml']},
        python_requires='>=3.8',
        install_requires=read_requirements('runtime.txt'),
        license='Apache License 2.0',
        zip_safe=False,
    )
