"""The web dashboard's static assets, served by the master at /."""
