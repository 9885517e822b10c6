/* keyboard shortcuts: filled in below */
