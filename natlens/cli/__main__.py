from natlens.cli.main import main

raise SystemExit(main())
