from natlens.cli import main

raise SystemExit(main())
