from lifecycle.launch.cli import main

raise SystemExit(main())
