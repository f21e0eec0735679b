from atoz_watcher.cli import main

raise SystemExit(main())
