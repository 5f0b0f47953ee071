from panel.cli import main

main()
