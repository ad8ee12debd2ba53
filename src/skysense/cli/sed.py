"""``skysense sed ...``: build a model grid, fit a catalogue, plot a fit."""

from __future__ import annotations

import json

from skysense.cli._common import SCHEDULER, add_area, keywords, verb

__all__ = ["register"]

_READ = """
--z-column str=redshift | redshift column (zspec where known, else zphot; default redshift)
--id-column str=help_id | object id column (default help_id)
"""


def register(subparsers) -> None:
    verbs = add_area(subparsers, "sed", "energy-balance SED fitting (HELP's CIGALE step)")
    verb(verbs, "grid", _grid, "build a model grid from a YAML configuration", """
config CONFIG | grid configuration (YAML): bands, redshifts and parameter values
--out GRID required | grid directory to write
""")  # fmt: skip
    verb(verbs, "fit", _fit, "fit a catalogue (f_/ferr_<band> in uJy) with a grid", """
grid GRID | grid directory (skysense sed grid)
catalog CATALOG | catalogue file (FITS, Parquet, CSV, ...)
--out DIR required | output directory: properties.parquet, spectra.parquet
--chunk-rows int=5000 | objects per Dask task (default 5000)
--eb-threshold finite=10 | energy-balance flag threshold on delta_chi2_eb (default 10)
--z-err-column COLUMN | photo-z error column: marginalise over the grid's redshifts within 3
  sigma (NaN or 0 = fixed redshift)
--mock flag | mock analysis (CIGALE's mock_flag): refit the best models with noise, write
  mock_recovery.json/.png (which parameters the photometry constrains)
""", _READ, SCHEDULER)  # fmt: skip
    verb(verbs, "plot", _plot, "PNG of one object's best-fit SED (and its parameter PDFs)", """
grid GRID | grid directory
catalog CATALOG | the fitted catalogue
fit DIR | output directory of skysense sed fit
--id HELP_ID required | object to plot
--out PNG required | PNG file to write
--pdfs flag | also write <PNG stem>_pdf.png with parameter PDFs
""", _READ)  # fmt: skip


def _grid(args) -> str:
    from skysense.sed import io

    grid = io.make_grid(io.read_grid_config(args.config))
    io.save_grid(grid, args.out)
    return f"grid written to {args.out}: {grid.describe()}"


def _fit(args) -> str:
    from skysense.sed.engine import fit_catalogue_file

    kw = keywords(args, "z_column id_column chunk_rows eb_threshold scheduler mock z_err_column")
    summary = fit_catalogue_file(args.grid, args.catalog, args.out, **kw)
    return json.dumps(summary, indent=1)


def _plot(args) -> str:
    from skysense.sed.engine import plot_object

    kw = keywords(args, "z_column id_column pdfs")
    return plot_object(args.grid, args.catalog, args.fit, args.id, args.out, **kw)
