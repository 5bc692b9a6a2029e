# MIDGE_CHECK_CFLAG(FLAG, ACTION-IF-OK, [ACTION-IF-NOT], [EXTRA-FLAGS])
# Compiles an empty program with FLAG (plus EXTRA-FLAGS) and runs the matching action.
AC_DEFUN([MIDGE_CHECK_CFLAG], [
  AS_VAR_PUSHDEF([midge_var], [midge_cv_cflag_$1])
  AC_CACHE_CHECK([whether $CC accepts $1], [midge_var], [
    midge_save_cflags="$CFLAGS"
    CFLAGS="$CFLAGS $4 $1"
    AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
      [AS_VAR_SET([midge_var], [yes])], [AS_VAR_SET([midge_var], [no])])
    CFLAGS="$midge_save_cflags"])
  AS_VAR_IF([midge_var], [yes], [$2], [$3])
  AS_VAR_POPDEF([midge_var])
])
