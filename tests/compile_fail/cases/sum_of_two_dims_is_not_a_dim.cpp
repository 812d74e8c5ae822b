// An I plus a K is a bundle of coordinates, never an I.
// expect: conversion from .*Coords<I, K>.* to non-scalar type .I. requested
#include "kiln/dims.hpp"
KILN_DIM(I);
KILN_DIM(J);
KILN_DIM(K);
#ifdef KILN_COMPILE_FAIL
I i = I(1) + K(2);
#else
I i = I(1) + I(2);
#endif
int main() {
  return i.get() == 3 ? 0 : 1;
}
