"""Builds the package, generating omnigate/v1's gRPC stubs from the
repository's protos (proto/omnigate/v1/*.proto) with grpcio-tools into the
build, so the stubs always match the protos and the protobuf and grpcio
versions they are generated for."""

import importlib.resources
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PROTO = Path(__file__).resolve().parent.parent.parent / "proto"


class BuildWithStubs(build_py):
    """build_py, then protoc over the protos into the build directory."""

    def run(self):
        super().run()
        from grpc_tools import protoc

        files = sorted((PROTO / "omnigate" / "v1").glob("*.proto"))
        if not files:
            raise SystemExit(
                f"no protos in {PROTO / 'omnigate' / 'v1'}: build this package "
                "from the Omnigate repository (pip install ./clients/python)"
            )
        include = importlib.resources.files("grpc_tools") / "_proto"
        out = self.build_lib
        args = ["protoc", f"-I{PROTO}", f"-I{include}", f"--python_out={out}",
                f"--pyi_out={out}", f"--grpc_python_out={out}"]
        if protoc.main(args + [str(f) for f in files]) != 0:
            raise SystemExit("protoc failed on " + ", ".join(map(str, files)))
        # value.proto has no service: its _grpc module is empty.
        Path(out, "omnigate", "v1", "value_pb2_grpc.py").unlink(missing_ok=True)


setup(cmdclass={"build_py": BuildWithStubs})
