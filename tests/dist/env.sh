# Sourced by the scripts that run Open MPI (tests/dist, tests/install), with
# $dist the directory tests/dist: how they run it.
# Open MPI refuses to run as root unless told (CI runs as root).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# make test-asan: Open MPI's own never-freed memory is suppressed
# (lsan.supp), which needs its plug-ins kept loaded, so that their frames
# have names, and full stacks (the slow unwinder: Open MPI has no frame
# pointers).  Without ASan these change nothing.
export OMPI_MCA_mca_base_component_disable_dlclose=1 PMIX_MCA_mca_base_component_disable_dlclose=1
export LSAN_OPTIONS="suppressions=$dist/lsan.supp:fast_unwind_on_malloc=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
