"""What the benchmarks (and the tests that run them) share: results files and RESULTS.md
generation (`bench`, `results_docs`) and local OpenAI-compatible backends that answer at once or
misbehave on demand (`stub_backend`, `fault_backend`). Not part of the installed package."""
