from atoz_watcher.app.cli import main

raise SystemExit(main())
