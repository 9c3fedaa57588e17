"""The app's screens: Corpora, Train, Gradients, Runs, Generate and Help (each with a .tcss)."""
