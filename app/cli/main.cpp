// attnscope-cli entry point (being written; replaced by the CLI implementation).
int main() { return 0; }
