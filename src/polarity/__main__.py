from polarity.cli import main

raise SystemExit(main())
