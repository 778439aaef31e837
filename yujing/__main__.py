from yujing.cli.app import main

main()
