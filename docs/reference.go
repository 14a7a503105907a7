package docs

import (
	"bytes"
	"path"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// ReferenceDir is where the command reference lives, under docs/.
const ReferenceDir = "reference"

// GenerateReference renders one Markdown page per available command of
// the tree under root (cobra's doc generator, without its date stamp so
// that the pages change only when the commands do), keyed by file name:
// anklume_snapshot_create.md for `anklume snapshot create`.
func GenerateReference(root *cobra.Command) (map[string][]byte, error) {
	root.DisableAutoGenTag = true
	pages := map[string][]byte{}
	var walk func(c *cobra.Command) error
	walk = func(c *cobra.Command) error {
		for _, sub := range c.Commands() {
			if !sub.IsAvailableCommand() || sub.IsAdditionalHelpTopicCommand() {
				continue
			}
			if err := walk(sub); err != nil {
				return err
			}
		}
		var b bytes.Buffer
		if err := doc.GenMarkdownCustom(c, &b, func(s string) string { return s }); err != nil {
			return err
		}
		pages[pageName(c)] = b.Bytes()
		return nil
	}
	return pages, walk(root)
}

func pageName(c *cobra.Command) string {
	return path.Clean(strings.ReplaceAll(c.CommandPath(), " ", "_") + ".md")
}
