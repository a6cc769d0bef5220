from camaudit.cli import main

main()
