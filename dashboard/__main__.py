from dashboard.launch import main

raise SystemExit(main())
