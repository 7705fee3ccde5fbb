"""Implementation of the `zsyncfile` rule. Load it from `@zsync3//:zsyncfile.bzl`, not from here."""

_UNSET = -1

def _check_header_value(attr_name, value):
    # A header value is one line of the .zsync header.
    if "\n" in value or "\r" in value:
        fail("zsyncfile: `%s` must not contain a line break, got %r" % (attr_name, value))

def _zsyncfile_impl(ctx):
    src = ctx.file.file

    filename = ctx.attr.filename or src.basename
    if "/" in filename:
        fail(("zsyncfile: `filename` must be a plain file name without `/` " +
              "(zsync clients refuse to write to other directories), got %r") % filename)
    _check_header_value("filename", filename)

    url = ctx.attr.url or src.basename
    _check_header_value("url", url)

    blocksize = ctx.attr.blocksize
    if blocksize != _UNSET and (blocksize <= 0 or (blocksize & (blocksize - 1)) != 0):
        fail("zsyncfile: `blocksize` must be a power of two (1, 2, 4, ..., 512, 1024, 2048, 4096, ...), got %d" % blocksize)

    out = ctx.actions.declare_file(ctx.label.name)

    # zsyncmake [-f FILENAME] [-o OUT] [-M] [-b BLOCKSIZE] [-u URL] INPUT.
    # -M: no MTime header, so the output depends only on these arguments and the bytes
    # of `file` (reproducible, remote-cache friendly).
    args = ctx.actions.args()
    args.add("-f", filename)
    args.add("-o", out)
    args.add("-M")
    if blocksize != _UNSET:
        args.add("-b", str(blocksize))
    args.add("-u", url)
    args.add(src)

    ctx.actions.run(
        executable = ctx.attr.zsyncmake[DefaultInfo].files_to_run,
        arguments = [args],
        inputs = [src],
        outputs = [out],
        mnemonic = "ZsyncMake",
        progress_message = "Making %{output}",
    )
    return [DefaultInfo(files = depset([out]))]

zsyncfile = rule(
    implementation = _zsyncfile_impl,
    doc = """Makes the .zsync control file of one file, with zsync3's `zsyncmake -M`.

The output is named like the target (e.g. `name = "app.AppImage.zsync"`) and is
byte-identical wherever and whenever it is built: it depends only on the attributes and
the bytes of `file` (no MTime header, no absolute paths). The action needs no network and
is safe for remote caching and remote execution.

Example:

```starlark
load("@zsync3//:zsyncfile.bzl", "zsyncfile")

zsyncfile(
    name = "app.AppImage.zsync",
    file = ":app.AppImage",
    url = "https://example.com/downloads/app.AppImage",
)
```
""",
    attrs = {
        "file": attr.label(
            doc = "The file to publish (a label that produces exactly one file).",
            mandatory = True,
            allow_single_file = True,
        ),
        "url": attr.string(
            doc = "The `URL:` header: where clients download `file` from, absolute or relative to " +
                  "the .zsync's own URL. Default: the file's basename, i.e. `file` is served from " +
                  "the same directory as the .zsync.",
        ),
        "filename": attr.string(
            doc = "The `Filename:` header: the name clients save the result under. " +
                  "Default: the file's basename. Must not contain `/`.",
        ),
        "blocksize": attr.int(
            doc = "Block size in bytes: a power of two (e.g. 1024, 2048, 4096). Default (-1): " +
                  "zsyncmake's choice, 2048 for files under 100 MB, 4096 for larger ones. " +
                  "Smaller blocks find more reusable data but make a bigger .zsync.",
            default = _UNSET,
        ),
        "zsyncmake": attr.label(
            doc = "The zsyncmake tool, built for the execution platform.",
            default = Label("//:zsyncmake"),
            executable = True,
            cfg = "exec",
        ),
    },
)
