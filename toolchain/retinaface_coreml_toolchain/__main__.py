from retinaface_coreml_toolchain.cli import main

main()
