from tinyq.cli import main

main()
