from mobility.cli import main

main()
