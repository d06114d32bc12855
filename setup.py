from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent


def read_version() -> str:
    """``__version__`` of tipsessions/_version.py, read without importing the package."""
    namespace: dict[str, str] = {}
    exec((HERE / "tipsessions" / "_version.py").read_text(encoding="utf-8"), namespace)
    return namespace["__version__"]


setup(
    name="tipsessions",
    version=read_version(),
    description="Sessions for webapp2 handlers: signed and encrypted cookies, "
    "memory, files, memcached, Redis and Cloud Datastore",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["tipsessions", "tipsessions.*"]),
    package_data={"tipsessions": ["py.typed"]},
    include_package_data=False,
    zip_safe=False,
    install_requires=[
        "webapp2==3.0.0b1",
        "WebOb>=1.8",
        "itsdangerous>=2.1",
        "cryptography>=41",
    ],
    extras_require={
        "memcache": ["pymemcache>=4.0"],
        "redis": ["redis>=5.0"],
        "datastore": ["google-cloud-datastore>=2.19"],
        "templates": ["Jinja2>=3.1"],
        "testing": ["WebTest>=3.0", "pytest>=8", "time-machine>=2.13"],
        "dev": [
            "pymemcache>=4.0",
            "redis>=5.0",
            "google-cloud-datastore>=2.19",
            "Jinja2>=3.1",
            "pytest>=8",
            "WebTest>=3.0",
            "waitress>=2.1",
            "time-machine>=2.13",
            "hypothesis>=6.100",
            "playwright>=1.40",
            "sphinx>=7.4",
            "furo>=2024.1.29",
            "mypy>=1.8",
            "ruff>=0.4",
            "build>=1.0",
            "twine>=5.0",
        ],
    },
    entry_points={},
    classifiers=[
        "Framework :: Paste",
        "Programming Language :: Python :: 3",
        "Topic :: Internet :: WWW/HTTP :: Session",
        "Typing :: Typed",
    ],
)
