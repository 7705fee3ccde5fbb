"""Analysis tests of the `zsyncfile` rule: its ZsyncMake action and its analysis-time failures."""

load("@bazel_skylib//lib:unittest.bzl", "analysistest", "asserts")
load("//:zsyncfile.bzl", "zsyncfile")

_LOREM = "bazel/files/lorem"
_LOREM_PATH = "tests/bazel/files/lorem"  # exec path of the payload (this is the root module)

def _argv_test_impl(ctx):
    env = analysistest.begin(ctx)
    target = analysistest.target_under_test(env)

    outs = target[DefaultInfo].files.to_list()
    asserts.equals(env, 1, len(outs), "zsyncfile must have exactly one output")
    out = outs[0]
    asserts.equals(env, target.label.name, out.basename, "the output is named like the target")

    actions = [a for a in analysistest.target_actions(env) if a.mnemonic == "ZsyncMake"]
    asserts.equals(env, 1, len(actions), "exactly one ZsyncMake action")
    if len(actions) != 1:
        return analysistest.end(env)
    action = actions[0]

    # argv[0] is zsyncmake, built for the execution platform.
    asserts.true(env, action.argv[0].endswith("/zsyncmake"), "argv[0] is zsyncmake: " + action.argv[0])
    asserts.true(env, "-exec" in action.argv[0], "zsyncmake is built in the exec configuration: " + action.argv[0])
    asserts.true(env, "-M" in action.argv, "-M is always passed")
    expected = [a.replace("{out}", out.path) for a in ctx.attr.expected_args]
    asserts.equals(env, expected, action.argv[1:])

    # Exactly one source input (the payload) and exactly one output: nothing undeclared.
    sources = [f.path for f in action.inputs.to_list() if f.is_source]
    asserts.equals(env, [_LOREM_PATH], sources)
    asserts.equals(env, [out.path], [f.path for f in action.outputs.to_list()])
    return analysistest.end(env)

_argv_test = analysistest.make(
    _argv_test_impl,
    attrs = {"expected_args": attr.string_list(doc = "argv after argv[0]; {out} = the output path")},
)

def _failure_test_impl(ctx):
    env = analysistest.begin(ctx)
    asserts.expect_failure(env, ctx.attr.expected_error)
    return analysistest.end(env)

_failure_test = analysistest.make(
    _failure_test_impl,
    expect_failure = True,
    attrs = {"expected_error": attr.string()},
)

def zsyncfile_analysis_test_suite(name):
    """Declares the analysis tests and a test_suite `name` that holds them.

    Args:
      name: name of the test_suite.
    """
    tests = []

    def argv_case(case, expected_args, **kwargs):
        zsyncfile(name = case + ".zsync", file = _LOREM, tags = ["manual"], **kwargs)
        _argv_test(
            name = case + "_test",
            size = "small",
            target_under_test = ":" + case + ".zsync",
            expected_args = expected_args,
        )
        tests.append(":" + case + "_test")

    def failure_case(case, expected_error, **kwargs):
        zsyncfile(name = case + ".zsync", file = _LOREM, tags = ["manual"], **kwargs)
        _failure_test(
            name = case + "_test",
            size = "small",
            target_under_test = ":" + case + ".zsync",
            expected_error = expected_error,
        )
        tests.append(":" + case + "_test")

    argv_case(
        "argv_defaults",
        ["-f", "lorem", "-o", "{out}", "-M", "-u", "lorem", _LOREM_PATH],
    )
    argv_case(
        "argv_all_attrs",
        ["-f", "lorem-1.0.txt", "-o", "{out}", "-M", "-b", "1024", "-u", "https://example.com/dl/lorem-1.0.txt", _LOREM_PATH],
        blocksize = 1024,
        filename = "lorem-1.0.txt",
        url = "https://example.com/dl/lorem-1.0.txt",
    )
    argv_case(
        "argv_blocksize_1",
        ["-f", "lorem", "-o", "{out}", "-M", "-b", "1", "-u", "lorem", _LOREM_PATH],
        blocksize = 1,
    )

    bad_blocksize = "`blocksize` must be a power of two"
    failure_case("fail_blocksize_3", bad_blocksize, blocksize = 3)
    failure_case("fail_blocksize_0", bad_blocksize, blocksize = 0)
    failure_case("fail_blocksize_negative", bad_blocksize, blocksize = -2048)
    failure_case("fail_blocksize_2049", bad_blocksize, blocksize = 2049)
    failure_case("fail_filename_slash", "`filename` must be a plain file name without `/`", filename = "dir/lorem")
    failure_case("fail_url_newline", "`url` must not contain a line break", url = "http://example.com/a\nSHA-1: 0")

    native.test_suite(name = name, tests = tests)
