// A plain int does not silently become a dimension value.
// expect: conversion from .int. to non-scalar type .I. requested
#include "kiln/dims.hpp"
KILN_DIM(I);
KILN_DIM(J);
KILN_DIM(K);
#ifdef KILN_COMPILE_FAIL
I i = 3;
#else
I i(3);
#endif
int main() {
  return i.get() == 3 ? 0 : 1;
}
