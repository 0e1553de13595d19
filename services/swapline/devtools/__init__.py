"""Tools for developing and operating swapline on one machine: the local
stack (:mod:`~swapline.devtools.stack`) and the benchmarks
(:mod:`~swapline.devtools.benchmarks`). They take the checkout's data as
arguments, with the working directory as the default."""
