from hypercare.cli import main

main()
