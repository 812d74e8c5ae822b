// A kernel that does not compile, for the cli tests: kiln compile prints the library's message.
extern "C" __global__ void broken(float* y) {
  y[0] = undeclared_name;
}
