"""The `zsyncfile` rule: make a .zsync control file with zsync3's zsyncmake.

Public, stable load path:

```starlark
load("@zsync3//:zsyncfile.bzl", "zsyncfile")
```
"""

load("//bazel/private:zsyncfile.bzl", _zsyncfile = "zsyncfile")

zsyncfile = _zsyncfile
